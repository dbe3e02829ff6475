"""Tools built on the public API, above every layer: `tilewise demo` (demo.py), `tilewise inspect` and the
cache commands (inspection.py), and the GPU validation kit (`python -m tilewise.tools.gpu_check`, with its
Triton peers in gpu_peers_triton.py)."""
