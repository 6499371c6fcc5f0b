#!/usr/bin/env python3
"""An example pipeline that does real work on the GPU the runner gives it.

Run by the Switchyard runner once per job (PIPELINE_EXECUTABLE=examples/pipeline/gpu-pipeline.py):
the job JSON arrives on stdin, the GPU in CUDA_VISIBLE_DEVICES / GPU_DEVICE_ID (the runner sets
both to the job's slot), and progress goes to stdout as JSON lines
{"progress": 0.42, "stage": "compute", "message": "..."}; the last line is {"result": {...}}.

It uses whatever is installed, in this order:
  1. PyTorch (torch.cuda)   2. CuPy   3. the CUDA driver itself (libcuda.so.1, through ctypes),
     loading a small PTX kernel — this needs nothing but the NVIDIA driver.
Each runs `iterations` SAXPY passes (y = a*x + y) over `size_mb` MiB vectors on the GPU, checks
the result on the host, and reports throughput.

Job params: iterations (default 200), size_mb (default 64), report_every (default 20).
Exit codes follow sysexits: 69 (EX_UNAVAILABLE, no usable GPU: permanent for the runner),
75 (EX_TEMPFAIL, GPU out of memory: retried), 65 (bad input).

Standard library only; Python 3.8+.
"""

import ctypes
import json
import os
import sys
import time
from array import array

EX_DATAERR = 65
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_TEMPFAIL = 75


def say(**obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def fail(code, message, cls=None):
    sys.stderr.write(message + "\n")
    if cls is not None:
        say(error=message, **{"class": cls})
    sys.exit(code)


def read_job():
    try:
        job = json.load(sys.stdin)
    except ValueError as err:
        fail(EX_DATAERR, "invalid input: the job on stdin is not JSON (%s)" % err)
    if not isinstance(job, dict):
        fail(EX_DATAERR, "invalid input: the job must be a JSON object")
    params = job.get("params") if isinstance(job.get("params"), dict) else {}
    iterations = int(params.get("iterations", 200))
    size_mb = float(params.get("size_mb", 64))
    report_every = max(1, int(params.get("report_every", 20)))
    if not (1 <= iterations <= 1_000_000) or not (0.001 <= size_mb <= 16384):
        fail(EX_DATAERR, "invalid input: iterations must be 1..1000000 and size_mb 0.001..16384")
    return job, iterations, size_mb, report_every


# ─────────────────────────── PyTorch / CuPy ───────────────────────────


def run_torch(n, iterations, report_every):
    import torch  # noqa: PLC0415

    if not torch.cuda.is_available():
        raise RuntimeError("torch sees no CUDA device")
    dev = torch.device("cuda:0")
    name = torch.cuda.get_device_name(dev)
    say(progress=0.02, stage="setup", message="PyTorch on %s" % name)
    x = torch.ones(n, dtype=torch.float32, device=dev)
    y = torch.full((n,), 2.0, dtype=torch.float32, device=dev)
    start = time.time()
    for i in range(1, iterations + 1):
        y.add_(x, alpha=1.0)
        if i % report_every == 0 or i == iterations:
            torch.cuda.synchronize()
            say(progress=round(0.05 + 0.9 * i / iterations, 4), stage="compute", message="pass %d/%d" % (i, iterations))
    torch.cuda.synchronize()
    elapsed = time.time() - start
    sample = y[:: max(1, n // 1024)].cpu().tolist()
    return "torch", name, elapsed, sample


def run_cupy(n, iterations, report_every):
    import cupy  # noqa: PLC0415

    name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    say(progress=0.02, stage="setup", message="CuPy on %s" % name)
    x = cupy.ones(n, dtype=cupy.float32)
    y = cupy.full(n, 2.0, dtype=cupy.float32)
    start = time.time()
    for i in range(1, iterations + 1):
        y += x
        if i % report_every == 0 or i == iterations:
            cupy.cuda.Device(0).synchronize()
            say(progress=round(0.05 + 0.9 * i / iterations, 4), stage="compute", message="pass %d/%d" % (i, iterations))
    cupy.cuda.Device(0).synchronize()
    elapsed = time.time() - start
    sample = cupy.asnumpy(y[:: max(1, n // 1024)]).tolist()
    return "cupy", name, elapsed, sample


# ─────────────────────────── the CUDA driver API ───────────────────────────

# y[i] = a * x[i] + y[i], one thread per element. PTX is compiled by the driver for the GPU at
# hand (sm_52 and newer).
SAXPY_PTX = b"""
.version 7.0
.target sm_52
.address_size 64

.visible .entry saxpy(
    .param .u32 n,
    .param .f32 a,
    .param .u64 x,
    .param .u64 y
)
{
    .reg .pred %p<2>;
    .reg .b32 %r<6>;
    .reg .f32 %f<5>;
    .reg .b64 %rd<8>;

    ld.param.u32 %r1, [n];
    ld.param.f32 %f1, [a];
    ld.param.u64 %rd1, [x];
    ld.param.u64 %rd2, [y];
    mov.u32 %r2, %ctaid.x;
    mov.u32 %r3, %ntid.x;
    mov.u32 %r4, %tid.x;
    mad.lo.s32 %r5, %r2, %r3, %r4;
    setp.ge.u32 %p1, %r5, %r1;
    @%p1 bra DONE;
    cvta.to.global.u64 %rd3, %rd1;
    cvta.to.global.u64 %rd4, %rd2;
    mul.wide.u32 %rd5, %r5, 4;
    add.s64 %rd6, %rd3, %rd5;
    add.s64 %rd7, %rd4, %rd5;
    ld.global.f32 %f2, [%rd6];
    ld.global.f32 %f3, [%rd7];
    fma.rn.f32 %f4, %f1, %f2, %f3;
    st.global.f32 [%rd7], %f4;
DONE:
    ret;
}
"""

CUDA_ERROR_OUT_OF_MEMORY = 2


class CudaError(Exception):
    def __init__(self, code, name):
        super().__init__("%s (%d)" % (name, code))
        self.code = code


def run_driver(n, iterations, report_every):
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError as err:
        raise RuntimeError("the NVIDIA driver (libcuda.so.1) is not installed: %s" % err)

    def check(result, what):
        if result != 0:
            name = ctypes.c_char_p()
            cuda.cuGetErrorName(result, ctypes.byref(name))
            raise CudaError(result, "%s failed: %s" % (what, (name.value or b"?").decode()))

    check(cuda.cuInit(0), "cuInit")
    count = ctypes.c_int()
    check(cuda.cuDeviceGetCount(ctypes.byref(count)), "cuDeviceGetCount")
    if count.value < 1:
        raise RuntimeError("no CUDA device visible (CUDA_VISIBLE_DEVICES=%s)" % os.environ.get("CUDA_VISIBLE_DEVICES"))
    device = ctypes.c_int()
    check(cuda.cuDeviceGet(ctypes.byref(device), 0), "cuDeviceGet")
    raw_name = ctypes.create_string_buffer(256)
    check(cuda.cuDeviceGetName(raw_name, 256, device), "cuDeviceGetName")
    name = raw_name.value.decode()
    context = ctypes.c_void_p()
    check(cuda.cuCtxCreate_v2(ctypes.byref(context), 0, device), "cuCtxCreate")
    dx = ctypes.c_uint64()
    dy = ctypes.c_uint64()
    try:
        say(progress=0.02, stage="setup", message="CUDA driver on %s" % name)
        module = ctypes.c_void_p()
        check(cuda.cuModuleLoadData(ctypes.byref(module), ctypes.c_char_p(SAXPY_PTX)), "cuModuleLoadData")
        kernel = ctypes.c_void_p()
        check(cuda.cuModuleGetFunction(ctypes.byref(kernel), module, b"saxpy"), "cuModuleGetFunction")
        nbytes = n * 4
        check(cuda.cuMemAlloc_v2(ctypes.byref(dx), ctypes.c_size_t(nbytes)), "cuMemAlloc")
        check(cuda.cuMemAlloc_v2(ctypes.byref(dy), ctypes.c_size_t(nbytes)), "cuMemAlloc")
        hx = array("f", [1.0]) * n
        hy = array("f", [2.0]) * n
        check(cuda.cuMemcpyHtoD_v2(dx, ctypes.c_void_p(hx.buffer_info()[0]), ctypes.c_size_t(nbytes)), "cuMemcpyHtoD")
        check(cuda.cuMemcpyHtoD_v2(dy, ctypes.c_void_p(hy.buffer_info()[0]), ctypes.c_size_t(nbytes)), "cuMemcpyHtoD")
        say(progress=0.05, stage="upload", message="%d MiB on the GPU" % (2 * nbytes >> 20))

        arg_n = ctypes.c_uint32(n)
        arg_a = ctypes.c_float(1.0)
        params = (ctypes.c_void_p * 4)(
            ctypes.cast(ctypes.byref(arg_n), ctypes.c_void_p),
            ctypes.cast(ctypes.byref(arg_a), ctypes.c_void_p),
            ctypes.cast(ctypes.byref(dx), ctypes.c_void_p),
            ctypes.cast(ctypes.byref(dy), ctypes.c_void_p),
        )
        block = 256
        grid = (n + block - 1) // block
        start = time.time()
        for i in range(1, iterations + 1):
            check(cuda.cuLaunchKernel(kernel, grid, 1, 1, block, 1, 1, 0, None, params, None), "cuLaunchKernel")
            if i % report_every == 0 or i == iterations:
                check(cuda.cuCtxSynchronize(), "cuCtxSynchronize")
                say(progress=round(0.05 + 0.9 * i / iterations, 4), stage="compute", message="pass %d/%d" % (i, iterations))
        check(cuda.cuCtxSynchronize(), "cuCtxSynchronize")
        elapsed = time.time() - start
        check(cuda.cuMemcpyDtoH_v2(ctypes.c_void_p(hy.buffer_info()[0]), dy, ctypes.c_size_t(nbytes)), "cuMemcpyDtoH")
        sample = list(hy[:: max(1, n // 1024)])
        return "cuda-driver", name, elapsed, sample
    finally:
        if dx.value:
            cuda.cuMemFree_v2(dx)
        if dy.value:
            cuda.cuMemFree_v2(dy)
        cuda.cuCtxDestroy_v2(context)


def main():
    job, iterations, size_mb, report_every = read_job()
    n = max(1, int(size_mb * 1024 * 1024) // 4)
    say(progress=0.0, stage="setup", message="job %s on GPU %s" % (os.environ.get("JOB_ID", job.get("job_id")), os.environ.get("GPU_DEVICE_ID", "?")))
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        fail(EX_UNAVAILABLE, "no GPU for this job: CUDA_VISIBLE_DEVICES is empty (set GPU_DEVICES on the runner)", "permanent")
    errors = []
    for backend in (run_torch, run_cupy, run_driver):
        try:
            used, name, elapsed, sample = backend(n, iterations, report_every)
            break
        except ImportError as err:
            errors.append("%s: %s" % (backend.__name__, err))
        except CudaError as err:
            if err.code == CUDA_ERROR_OUT_OF_MEMORY:
                fail(EX_TEMPFAIL, "CUDA out of memory: %s" % err)
            fail(EX_SOFTWARE, "CUDA error: %s" % err)
        except RuntimeError as err:
            if "out of memory" in str(err).lower():
                fail(EX_TEMPFAIL, "CUDA out of memory: %s" % err)
            errors.append("%s: %s" % (backend.__name__, err))
    else:
        fail(EX_UNAVAILABLE, "no usable GPU: " + "; ".join(errors))

    expected = 2.0 + iterations * 1.0
    ok = all(abs(v - expected) < 1e-3 for v in sample)
    if not ok:
        fail(EX_SOFTWARE, "wrong result on the GPU: expected %s, got %s" % (expected, sample[:4]))
    gbytes = 3.0 * 4 * n * iterations / 1e9  # two reads and a write per element and pass
    say(progress=1.0, stage="done", message="%d passes in %.3f s" % (iterations, elapsed))
    say(result={
        "backend": used,
        "device": name,
        "gpu_device_id": os.environ.get("GPU_DEVICE_ID"),
        "elements": n,
        "iterations": iterations,
        "seconds": round(elapsed, 4),
        "effective_gb_per_s": round(gbytes / elapsed, 2) if elapsed > 0 else None,
        "checked": len(sample),
    })


if __name__ == "__main__":
    main()
