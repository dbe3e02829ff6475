"""printf/print: one print per CTA, by thread 0, once the values are in place (every op that writes a
tile ends with a barrier). The emulator hands the values back to Python (emulator.py formats them
with the reference backend's `_format`, so output is identical); a GPU gets device printf with each
%v turned into the C conversion of its dtype and tiles printed by tw_print_tile. A mixin of
codegen.KernelGen.

Output order follows the reference backend (all blocks print a loop's iteration 1 before any prints
iteration 2): each print also passes its place in the program, the ops' pre-order positions with the
trip number of every loop around it, and the emulator sorts one launch's prints by (place, block)."""
from __future__ import annotations

from ..reference.interpreter import _PRINTF_SPEC
from .storage import is_tile

_INT_CONV = "diouxXc"
_FLOAT_CONV = "eEfFgG"


def _c_string(text):
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 32 or ord(ch) > 126:
            out.extend(f"\\{b:03o}" for b in ch.encode())
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _c_flags(flags):
    """printf keeps only the flags, width and precision C knows (a Python spec like '>5' loses them)."""
    m = _PRINTF_SPEC.fullmatch("%" + flags + "d") if flags else None
    return flags if m else ""


class Printing:
    def op_printf(self, op):
        which, pos = len(self.prints), self.storage.pos
        order = [pos[id(loop)] for loop, _ in self.loops] + [pos[id(op)]]
        self.prints.append((op.attrs["fmt"], [(v.type.dtype, v.type.shape if is_tile(v) else ()) for v in op.operands],
                            op.attrs.get("python"), order))
        ptrs = [self.name(v) if is_tile(v) else f"&{self.name(v)}" for v in op.operands] + ["tw_trips"]
        trips = ", ".join([k for _, k in self.loops] or ["0"])
        self.line("if (threadIdx.x == 0) {")
        self.line("#ifdef TW_EMULATOR")
        self.line(f"  const tw_i64 tw_trips[] = {{{trips}}};")
        self.line(f"  {{ const void* const tw_pv[] = {{{', '.join(ptrs)}}}; tw_print({which}, tw_pv); }}")
        self.line("#else")
        for s in self._device_printf(op):
            self.line("  " + s)
        self.line("#endif")
        self.line("}")

    def _device_printf(self, op):
        """Device printf calls: text and scalars in one call each run, tiles through tw_print_tile."""
        fmt, vals = op.attrs["fmt"], iter(op.operands)
        out, text, args, pos = [], [], [], 0

        def flush():
            if text:
                out.append(f"tw_printf({', '.join([_c_string(''.join(text))] + args)});")
            text.clear()
            args.clear()

        for m in _PRINTF_SPEC.finditer(fmt):
            text.append(fmt[pos:m.start()].replace("%", "%%"))
            pos = m.end()
            flags, _, conv = m.groups()
            if conv == "%":
                text.append("%%")
                continue
            v = next(vals)
            dt, name = v.type.dtype, self.name(v)
            if is_tile(v):
                flush()
                shape = ", ".join(str(s) for s in v.type.shape)
                out.append(f"{{ const int tw_shape[] = {{{shape}}}; tw_print_tile({name}, {v.type.ndim}, tw_shape); }}")
                continue
            if conv == "s" and not dt.is_bool:
                conv = "v"  # Python's str() of a number: the dtype's own conversion
            c_flags = _c_flags(flags) if conv == "v" else flags
            if conv == "v":
                conv = "s" if dt.is_bool else ("g" if dt.is_float else ("d" if dt.kind == "i" else "u"))
            if conv == "s":
                text.append("%s")
                args.append(f'({name} ? "True" : "False")')
            elif conv in _INT_CONV:
                text.append(f"%{c_flags}{'' if conv == 'c' else 'll'}{conv}")
                src = f"tw_widen({name})" if dt.is_float else name
                args.append(f"(int){src}" if conv == "c" else f"(long long){src}")
            else:
                text.append(f"%{c_flags}{conv}")
                args.append(f"(double)tw_widen({name})" if dt.is_float else f"(double){name}")
        text.append(fmt[pos:].replace("%", "%%"))
        flush()
        return out
