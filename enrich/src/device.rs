//! Choosing where the encoder runs. One binary serves CPU and GPU machines: the CUDA part of libtorch
//! (`libtorch_cuda.so`, e.g. from an installed PyTorch's `torch/lib` on `LD_LIBRARY_PATH`) is loaded at run
//! time only when CUDA is asked for, so building and testing never need a GPU.

use std::ffi::CString;

use tch::Device;

use crate::EnrichError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceRequest {
    /// CUDA when a GPU and a CUDA-enabled libtorch are found, otherwise the CPU.
    Auto,
    Cpu,
    /// CUDA or an error.
    Cuda,
}

/// Loads libtorch's CUDA backend into the process if it can be found; true when a GPU is then usable.
///
/// The backend is loaded before libtorch is first asked about CUDA: libtorch keeps the answer of its first
/// look for CUDA hooks for the life of the process, so asking first would say "no GPU" even after the load.
/// (Found on an H200, where asking first failed and preloading `libtorch_cuda.so` worked; the scripts that
/// run on a GPU machine preload it as well.)
fn cuda_available() -> bool {
    let Ok(name) = CString::new("libtorch_cuda.so") else { return false };
    // SAFETY: dlopen with a valid NUL-terminated name; the handle is kept for the life of the process
    // (libtorch registers its CUDA hooks from the library's static initialisers). dlerror returns null or a
    // NUL-terminated message owned by the C library, read at once.
    #[allow(unsafe_code)]
    let loaded = unsafe {
        let handle = libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL);
        if handle.is_null() {
            let error = libc::dlerror();
            let error = if error.is_null() {
                String::new()
            } else {
                std::ffi::CStr::from_ptr(error).to_string_lossy().into_owned()
            };
            tracing::debug!(%error, "libtorch_cuda.so could not be loaded");
        }
        !handle.is_null()
    };
    tracing::debug!(loaded, "looked for libtorch's CUDA backend");
    tch::Cuda::is_available()
}

pub fn select_device(request: DeviceRequest) -> Result<Device, EnrichError> {
    let device = match request {
        DeviceRequest::Cpu => Device::Cpu,
        DeviceRequest::Auto if cuda_available() => Device::Cuda(0),
        DeviceRequest::Auto => Device::Cpu,
        DeviceRequest::Cuda if cuda_available() => Device::Cuda(0),
        DeviceRequest::Cuda => {
            return Err(EnrichError::Device(
                "CUDA was requested but no GPU is usable: put a CUDA-enabled libtorch (torch/lib of PyTorch 2.11) \
                 on LD_LIBRARY_PATH on a machine with an NVIDIA GPU"
                    .into(),
            ))
        }
    };
    tracing::info!(?request, ?device, cuda_devices = tch::Cuda::device_count(), "device selected");
    Ok(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_always_available_and_auto_falls_back() {
        assert_eq!(select_device(DeviceRequest::Cpu).expect("cpu"), Device::Cpu);
        let auto = select_device(DeviceRequest::Auto).expect("auto never fails");
        match select_device(DeviceRequest::Cuda) {
            Ok(cuda) => assert_eq!(auto, cuda),
            Err(e) => {
                assert_eq!(auto, Device::Cpu);
                assert!(e.to_string().contains("CUDA"), "{e}");
            }
        }
    }
}
