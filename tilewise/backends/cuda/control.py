"""Code generation for structured control flow. Conditions and bounds are scalars, which every thread
of a CTA computes alike, so for/while/if are uniform across the CTA and barriers inside them are
safe. Carried values live in "slots" (registers, or shared memory for tiles) shared by the op's
results and its regions' arguments; yields copy into them. A mixin of codegen.KernelGen."""
from __future__ import annotations

import math

from .storage import carried_args, is_tile


class ControlFlow:
    def _slots(self, op, inits=None):
        """Storage for each carried value (shared by the op's results and its regions' arguments)."""
        copies = []
        for i, r in enumerate(op.results):
            name = self.fresh("c")
            for v in [r] + carried_args(op, i):
                self.names[v.id] = name
            if is_tile(r):
                self.line(f"{self.ct(r)}* const {name} = {self.smem(r.id, self.ct(r))};")
                if inits is not None:
                    copies.append((name, inits[i]))
            elif inits is not None:
                self.line(f"{self.ct(r)} {name} = {self.name(inits[i])};")
            else:
                self.line(f"{self.ct(r)} {name};")
        for name, init in copies:
            self.loop(math.prod(init.type.shape), f"{name}[i] = {self.name(init)}[i];")
        if copies:
            self.line("tw_sync();")

    def _yield(self, op, region):
        """Copy the region's yielded values into the op's slots: read every value before writing any,
        since a yielded value may be another slot (a swap of carried values)."""
        vals = region.ops[-1].operands
        slots = [self.names[r.id] for r in op.results]
        scalars = [(s, v) for s, v in zip(slots, vals) if not is_tile(v) and self.name(v) != s]
        if scalars:
            temps = [self.fresh() for _ in scalars]
            self.line("{ " + " ".join(f"const {self.ct(v)} {t} = {self.name(v)};" for t, (_, v) in zip(temps, scalars))
                      + " " + " ".join(f"{s} = {t};" for t, (s, _) in zip(temps, scalars)) + " }")
        tiles = [(s, v) for s, v in zip(slots, vals) if is_tile(v) and self.name(v) != s]
        by_size = {}
        for s, v in tiles:
            by_size.setdefault(math.prod(v.type.shape), []).append((s, v))
        for n, group in by_size.items():
            temps = [self.fresh() for _ in group]
            self.loop(n, [" ".join(f"const {self.ct(v)} {t} = {self.name(v)}[i];" for t, (_, v) in zip(temps, group)),
                          " ".join(f"{s}[i] = {t};" for t, (s, _) in zip(temps, group))])
        if tiles:
            self.line("tw_sync();")

    def _region(self, op, region):
        self.depth += 1
        self.block(region)
        self._yield(op, region)
        self.depth -= 1

    def op_for(self, op):
        lb, ub, step, *inits = op.operands
        (body,) = op.regions
        self._slots(op, inits)
        k, lo, st, n = self.fresh("k"), self.fresh("lb"), self.fresh("st"), self.fresh("n")
        self.line(f"const tw_i64 {lo} = (tw_i64){self.name(lb)}, {st} = (tw_i64){self.name(step)};")
        self.line(f"const tw_i64 {n} = tw_trip_count({lo}, (tw_i64){self.name(ub)}, {st});")
        loads = self.pipeline_prologue(op, n, lo)  # cp.async double buffering (pipeline.py)
        self.line(f"for (tw_i64 {k} = 0; {k} < {n}; ++{k}) {{")
        iv = body.args[0]
        self.line(f"  const {self.ct(iv)} {self.name(iv)} = ({self.ct(iv)})({lo} + {k} * {st});")
        if loads:
            self.depth += 1
            self.pipeline_step(op, loads, k, n, lo, st)
            self.depth -= 1
        self.loops.append((op, k))
        self._region(op, body)
        self.loops.pop()
        self.line("}")

    def op_while(self, op):
        cond, body = op.regions
        self._slots(op, op.operands)
        k = self.fresh("k")  # the trip number, for the order of prints (printing.py)
        self.line(f"for (tw_i64 {k} = 0;; ++{k}) {{")
        self.loops.append((op, k))
        self.depth += 1
        self.block(cond)
        self.line(f"if (!{self.name(cond.ops[-1].operands[0])}) break;")
        self.depth -= 1
        self._region(op, body)
        self.loops.pop()
        self.line("}")

    def op_if(self, op):
        self._slots(op)
        self.line(f"if ({self.name(op.operands[0])}) {{")
        self._region(op, op.regions[0])
        self.line("} else {")
        self._region(op, op.regions[1])
        self.line("}")
