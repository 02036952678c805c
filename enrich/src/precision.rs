//! Which precision the encoder computes in, chosen at start from what the hardware has and does: bf16 on
//! CPUs with AVX512_BF16 or AMX where a BERT-shaped matmul measured at start is clearly faster in bf16 than
//! in f32; f32 elsewhere (on AVX2 alone bf16 is emulated and slower than f32). The flags alone are not
//! enough: libtorch's bf16 matmul measured 2.5–3.7× its f32 on one AVX512_BF16 machine and 0.56× on another
//! with the same flags (`murmur-bench enrich`, 2026-12-03: f32 138 comments/s, bf16 85). On CUDA `auto` is
//! f32: on an H200 (2026-12-04, `infra/gpu-check.sh`) the whole enrichment ran at 10,214 comments/s in f32
//! and 4,383 in bf16, though bf16 matmuls alone are ten times faster there, so no matmul timing decides it.

use std::fmt;
use std::time::{Duration, Instant};

use tch::{Device, Kind, Tensor};

use crate::EnrichError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// bf16 where the hardware multiplies it natively and measurably faster than f32, f32 otherwise.
    Auto,
    F32,
    Bf16,
}

impl Precision {
    /// The kind to compute in on `device`: `Auto` resolved from the hardware; `Bf16` asked for on hardware
    /// without it is an error, not a silent slowdown.
    pub fn resolve(self, device: Device) -> Result<Kind, EnrichError> {
        let fast = native_bf16(device);
        match self {
            Self::Auto if fast && !device.is_cuda() && bf16_measured_faster() => Ok(Kind::BFloat16),
            Self::Auto | Self::F32 => Ok(Kind::Float),
            Self::Bf16 if fast => Ok(Kind::BFloat16),
            Self::Bf16 => Err(EnrichError::Device(format!(
                "bf16 was asked for but this CPU has neither AVX512_BF16 nor AMX ({}): use f32 or auto",
                CpuFeatures::detect()
            ))),
        }
    }
}

/// How much faster bf16 must multiply than f32 for `auto` to choose it on a CPU (it also costs a little
/// accuracy).
const BF16_MIN_SPEEDUP: f64 = 1.2;

/// Whether bf16 matmuls on this CPU beat f32 by [`BF16_MIN_SPEEDUP`]: the best of three timings of a
/// feed-forward-shaped product (256 tokens × 384 by 384 × 1536) per kind, about 50 ms in all.
fn bf16_measured_faster() -> bool {
    let best = |kind: Kind| -> Duration {
        let a = Tensor::randn([256, 384], (kind, Device::Cpu));
        let b = Tensor::randn([384, 1536], (kind, Device::Cpu));
        let _ = a.matmul(&b);
        (0..3)
            .map(|_| {
                let started = Instant::now();
                for _ in 0..4 {
                    let _ = a.matmul(&b);
                }
                started.elapsed()
            })
            .min()
            .unwrap_or(Duration::MAX)
    };
    let (f32, bf16) = (best(Kind::Float), best(Kind::BFloat16));
    let speedup = f32.as_secs_f64() / bf16.as_secs_f64().max(f64::MIN_POSITIVE);
    let chosen = speedup >= BF16_MIN_SPEEDUP;
    tracing::info!(
        speedup = format!("{speedup:.2}"),
        chosen = if chosen { "bf16" } else { "f32" },
        "bf16 matmul against f32, measured at start"
    );
    chosen
}

/// Whether `device` multiplies bf16 natively (CUDA; a CPU with AVX512_BF16 or AMX): the one rule `auto`
/// and the benchmark's choice of precisions follow.
pub fn native_bf16(device: Device) -> bool {
    device.is_cuda() || CpuFeatures::detect().fast_bf16()
}

/// The CPU features that decide precision and kernels, as the kernel reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuFeatures {
    pub model: String,
    pub avx2: bool,
    pub avx512: bool,
    pub avx512_bf16: bool,
    pub avx512_vnni: bool,
    pub amx_bf16: bool,
}

impl CpuFeatures {
    /// From `/proc/cpuinfo` (Linux); nothing detected elsewhere.
    pub fn detect() -> Self {
        std::fs::read_to_string("/proc/cpuinfo").map(|s| Self::parse(&s)).unwrap_or_default()
    }

    pub fn parse(cpuinfo: &str) -> Self {
        let field = |name: &str| {
            cpuinfo.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_once(':')).map_or("", |(_, v)| v.trim())
        };
        let flags: Vec<&str> = field("flags").split_whitespace().collect();
        let has = |f: &str| flags.contains(&f);
        Self {
            model: field("model name").to_owned(),
            avx2: has("avx2"),
            avx512: has("avx512f"),
            avx512_bf16: has("avx512_bf16"),
            avx512_vnni: has("avx512_vnni"),
            amx_bf16: has("amx_bf16"),
        }
    }

    /// Whether bf16 matmuls run natively (faster than f32).
    pub fn fast_bf16(&self) -> bool {
        self.avx512_bf16 || self.amx_bf16
    }
}

impl fmt::Display for CpuFeatures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let named = [
            (self.avx2, "AVX2"),
            (self.avx512, "AVX-512"),
            (self.avx512_vnni, "AVX512_VNNI"),
            (self.avx512_bf16, "AVX512_BF16"),
            (self.amx_bf16, "AMX-BF16"),
        ];
        let present: Vec<&str> = named.iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect();
        let model = if self.model.is_empty() { "unknown CPU" } else { &self.model };
        write!(
            f,
            "{model}: {}",
            if present.is_empty() { "no vector extensions detected".into() } else { present.join(", ") }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_from_cpuinfo() {
        let avx2 = CpuFeatures::parse("model name\t: AMD EPYC\nflags\t\t: fpu sse avx avx2 fma\n");
        assert!(avx2.avx2 && !avx2.fast_bf16());
        assert_eq!(avx2.to_string(), "AMD EPYC: AVX2");
        let sapphire = CpuFeatures::parse("flags : avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile\n");
        assert!(sapphire.fast_bf16() && sapphire.avx512_vnni);
    }

    #[test]
    fn auto_follows_the_hardware_and_bf16_is_refused_without_it() {
        let kind = Precision::Auto.resolve(Device::Cpu).expect("auto always resolves");
        let fast = CpuFeatures::detect().fast_bf16();
        // bf16 only where the flags allow it (and then only if measured faster).
        assert!(kind == Kind::Float || fast, "{kind:?} without native bf16");
        assert_eq!(Precision::F32.resolve(Device::Cpu).expect("f32"), Kind::Float);
        assert_eq!(Precision::Bf16.resolve(Device::Cpu).is_ok(), fast);
    }
}
