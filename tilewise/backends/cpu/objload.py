"""A small loader for the object code this backend emits: x86-64 ELF relocatable files, as LLVM writes
them for the JIT's large code model. It maps the allocated sections into fresh memory, applies the
relocations, resolves undefined symbols (memset, erff, ...) against the process and libm, and makes the
code executable.

Why not MCJIT: loading llvmlite's shared library and bindings costs 35-45 ms, most of a warm-cache start;
running cached object code needs none of LLVM. Anything this loader does not know (another machine or
file format, a relocation type, TLS, constructors, common symbols) raises `Unsupported`, and the caller
loads the object through MCJIT instead, so an unusual object is slower to load, never wrong."""
from __future__ import annotations

import ctypes
import mmap
import struct
import sys

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")
_RELA = struct.Struct("<QQq")
_EM_X86_64, _ET_REL = 62, 1
_SHT_PROGBITS, _SHT_SYMTAB, _SHT_RELA, _SHT_NOBITS, _SHT_REL = 1, 2, 4, 8, 9
_SHF_WRITE, _SHF_ALLOC = 0x1, 0x2
_SHN_UNDEF, _SHN_ABS, _SHN_COMMON = 0, 0xFFF1, 0xFFF2
_STT_TLS = 6
_SHT_X86_64_UNWIND = 0x70000001
# Section types that carry no code or data to map (notes, the symbol and string tables, groups, ...).
_IGNORED_TYPES = {0, 2, 3, 7, 0x11, 0x6FFFFFF6, 0x6FFFFFFD, 0x6FFFFFFE, 0x6FFFFFFF, 0x6FFF4C03}
_R_64, _R_PC32, _R_PLT32, _R_32, _R_32S, _R_PC64 = 1, 2, 4, 10, 11, 24


class Unsupported(Exception):
    """The object uses something this loader does not implement; load it with MCJIT instead."""


def _libc():
    lib = ctypes.CDLL(None, use_errno=True)
    lib.mmap.restype, lib.mmap.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                                                            ctypes.c_int, ctypes.c_int, ctypes.c_long]
    lib.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    lib.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    return lib


_STATE = {}
SYMBOLS = {}  # symbols the backend defines for its objects (the printf callback): name -> address


def _resolve(name):
    """The address of a symbol the object calls but does not define: the backend's own, else from the
    process or libm."""
    if name in SYMBOLS:
        return SYMBOLS[name]
    if "libs" not in _STATE:
        libs = [ctypes.CDLL(None)]
        try:
            libs.append(ctypes.CDLL("libm.so.6"))
        except OSError:
            pass
        _STATE["libs"] = libs
    for lib in _STATE["libs"]:
        try:
            return ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
        except AttributeError:
            continue
    raise Unsupported(f"undefined symbol {name!r}")


class Image:
    """An object file mapped into executable memory; `symbol(name)` gives a defined symbol's address.
    The mapping lives as long as the image."""

    def __init__(self, obj: bytes):
        if not sys.platform.startswith("linux"):
            raise Unsupported(f"platform {sys.platform}")
        sections, symbols, relocations = _parse(obj)
        layout, read_only, size = _layout(sections)
        if "libc" not in _STATE:
            _STATE["libc"] = _libc()
        libc = self._libc = _STATE["libc"]
        size = max(mmap.PAGESIZE, -(-size // mmap.PAGESIZE) * mmap.PAGESIZE)
        base = libc.mmap(None, size, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
        if base in (None, ctypes.c_void_p(-1).value):
            raise Unsupported(f"mmap failed (errno {ctypes.get_errno()})")
        self.base, self.size = base, size
        for index, offset in layout.items():
            kind, file_offset, length = sections[index][1], sections[index][4], sections[index][5]
            if kind != _SHT_NOBITS:  # the mapping is already zero: .bss needs no copy
                ctypes.memmove(base + offset, obj[file_offset:file_offset + length], length)
        self._symbols = {}
        addresses = []
        for name, kind, shndx, value in symbols:
            if shndx == _SHN_UNDEF:
                address = _resolve(name) if name else 0
            elif shndx == _SHN_ABS:
                address = value
            elif shndx in layout:
                address = base + layout[shndx] + value
            else:
                address = None  # a symbol of a section that is not mapped; only an error if used
            if kind == _STT_TLS or shndx == _SHN_COMMON:
                raise Unsupported("thread-local or common symbols")
            addresses.append(address)
            if name and address is not None and shndx != _SHN_UNDEF:
                self._symbols[name] = address
        for target, entries in relocations:
            if target in layout:
                _relocate(base + layout[target], entries, addresses)
        if read_only and libc.mprotect(base, read_only, mmap.PROT_READ | mmap.PROT_EXEC) != 0:
            raise Unsupported(f"mprotect failed (errno {ctypes.get_errno()})")

    def symbol(self, name):
        return self._symbols.get(name)

    def __del__(self):
        if getattr(self, "base", None):
            self._libc.munmap(self.base, self.size)


def _parse(obj):
    """(sections, symbols, relocations) of an x86-64 ELF relocatable object, or Unsupported."""
    if len(obj) < _EHDR.size or obj[:4] != b"\x7fELF":
        raise Unsupported("not an ELF file")
    ident, etype, machine, _, _, _, shoff, _, _, _, _, shentsize, shnum, _ = _EHDR.unpack_from(obj)
    if ident[4] != 2 or ident[5] != 1 or etype != _ET_REL or machine != _EM_X86_64 or shentsize != _SHDR.size:
        raise Unsupported("not a little-endian x86-64 relocatable ELF object")
    sections = [_SHDR.unpack_from(obj, shoff + i * _SHDR.size) for i in range(shnum)]
    # (name, type, flags, addr, offset, size, link, info, addralign, entsize)
    symbols, relocations, strtab = [], [], None
    for _, kind, flags, _, offset, size, link, info, _, _ in sections:
        if kind == _SHT_SYMTAB:
            s_off, s_size = sections[link][4], sections[link][5]
            strtab = obj[s_off:s_off + s_size]
            for i in range(size // _SYM.size):
                name, st_info, _, shndx, value, _ = _SYM.unpack_from(obj, offset + i * _SYM.size)
                symbols.append((strtab[name:strtab.index(b"\0", name)].decode(), st_info & 0xF, shndx, value))
        elif kind == _SHT_RELA:
            entries = [_RELA.unpack_from(obj, offset + i * _RELA.size) for i in range(size // _RELA.size)]
            relocations.append((info, entries))
        elif kind == _SHT_X86_64_UNWIND:
            continue  # .eh_frame: nothing unwinds through kernels (they neither throw nor call what throws)
        elif kind == _SHT_REL:
            raise Unsupported("REL relocations")
        elif flags & _SHF_ALLOC and kind not in (_SHT_PROGBITS, _SHT_NOBITS):
            raise Unsupported(f"allocated section of type {kind:#x} (constructors, TLS, ...)")
        elif kind not in _IGNORED_TYPES and kind not in (_SHT_PROGBITS, _SHT_NOBITS):
            raise Unsupported(f"section type {kind:#x}")
    return sections, symbols, relocations


def _layout(sections):
    """Offsets of the allocated sections in one mapping, each at its alignment: code and constants first,
    then, from a page boundary, the writable sections. Returns (layout, size of the read-only part, size)."""
    layout, size, read_only = {}, 0, 0
    for writable in (False, True):
        if writable:
            size = read_only = -(-size // mmap.PAGESIZE) * mmap.PAGESIZE
        for index, (_, kind, flags, _, _, length, _, _, align, _) in enumerate(sections):
            if flags & _SHF_ALLOC and kind in (_SHT_PROGBITS, _SHT_NOBITS) and bool(flags & _SHF_WRITE) == writable:
                align = max(align, 1)
                size = -(-size // align) * align
                layout[index] = size
                size += length
    return layout, read_only, size


def _relocate(section_address, entries, addresses):
    for offset, info, addend in entries:
        kind, symbol = info & 0xFFFFFFFF, info >> 32
        target = addresses[symbol] if symbol < len(addresses) else None
        if target is None:
            raise Unsupported(f"relocation against an unmapped symbol ({symbol})")
        place = section_address + offset
        value = target + addend
        if kind == _R_64:
            ctypes.c_uint64.from_address(place).value = value & 0xFFFFFFFFFFFFFFFF
        elif kind == _R_PC64:
            ctypes.c_uint64.from_address(place).value = (value - place) & 0xFFFFFFFFFFFFFFFF
        elif kind in (_R_PC32, _R_PLT32):
            _store32(place, value - place, signed=True)
        elif kind == _R_32:
            _store32(place, value, signed=False)
        elif kind == _R_32S:
            _store32(place, value, signed=True)
        else:
            raise Unsupported(f"relocation type {kind}")


def _store32(place, value, signed):
    if not (-(1 << 31) <= value < (1 << 31) if signed else 0 <= value < (1 << 32)):
        raise Unsupported("a 32-bit relocation out of range")
    ctypes.c_uint32.from_address(place).value = value & 0xFFFFFFFF
