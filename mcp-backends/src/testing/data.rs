//! Deterministic synthetic vectors for index tests and benches: independent Gaussian
//! components (no structure, the hardest input for a graph index) and embedding-like vectors
//! (the low intrinsic dimension of text embeddings).

/// A seeded source of standard Gaussian numbers (splitmix64 + Box-Muller); the same seed
/// always gives the same sequence.
pub struct GaussianVectors(u64);

impl GaussianVectors {
    /// A source seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        GaussianVectors(seed)
    }

    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// The next vector of `dimensions` independent standard Gaussian components.
    pub fn gaussian(&mut self, dimensions: usize) -> Vec<f32> {
        (0..dimensions)
            .map(|_| {
                let (u, v) = (self.uniform(), self.uniform());
                ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
            })
            .collect()
    }
}

/// `count` vectors of `dimensions` with the low intrinsic dimension of text embeddings: a 24-d
/// Gaussian latent point through a fixed random 24 x `dimensions` projection, plus 10 %
/// isotropic noise.
pub fn embedding_like(count: usize, dimensions: usize, seed: u64) -> Vec<Vec<f32>> {
    let projection: Vec<Vec<f32>> = (0..24)
        .map(|row| GaussianVectors::new(77 + row).gaussian(dimensions))
        .collect();
    let mut source = GaussianVectors::new(seed);
    (0..count)
        .map(|_| {
            let latent = source.gaussian(24);
            let noise = source.gaussian(dimensions);
            (0..dimensions)
                .map(|d| {
                    let signal: f32 = latent.iter().zip(&projection).map(|(l, p)| l * p[d]).sum();
                    signal + 0.1 * 24f32.sqrt() * noise[d]
                })
                .collect()
        })
        .collect()
}
