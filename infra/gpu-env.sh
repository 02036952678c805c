# Sourced by the scripts that run on an NVIDIA GPU machine (gpu-check.sh, gpu-train.sh), after they define
# die(): checks the driver, names the GPU, and puts PyTorch 2.11's CUDA libraries (TORCH_LIB, default: the
# installed PyTorch's torch/lib) on the library path.
command -v nvidia-smi >/dev/null || die "no nvidia-smi: this machine has no NVIDIA driver"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
TORCH_LIB=${TORCH_LIB:-$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null || true)}
[ -f "$TORCH_LIB/libtorch_cuda.so" ] || die "no libtorch_cuda.so in '$TORCH_LIB' (set TORCH_LIB to PyTorch 2.11's torch/lib)"
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# Loaded before libtorch is first asked about CUDA (what worked on an H200; see enrich/src/device.rs).
export LD_PRELOAD="$TORCH_LIB/libtorch_cuda.so${LD_PRELOAD:+:$LD_PRELOAD}"
