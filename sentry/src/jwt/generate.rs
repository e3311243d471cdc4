//! RSA-2048 generation with the RustCrypto `rsa` crate: `ring` signs with RSA keys but cannot
//! make them.

use ring::rand::SecureRandom as _;
use rsa::pkcs8::EncodePrivateKey as _;
use rsa::rand_core::{CryptoRng, Error, RngCore};

/// Upstream's generated JWT keys are RSA-2048.
const RSA_BITS: usize = 2048;

/// A new RSA-2048 private key as PKCS#8 DER.
pub fn generate_rsa_pkcs8() -> Result<Vec<u8>, String> {
    let key = rsa::RsaPrivateKey::new(&mut OsRandom, RSA_BITS).map_err(|e| e.to_string())?;
    let der = key.to_pkcs8_der().map_err(|e| e.to_string())?;
    Ok(der.as_bytes().to_vec())
}

/// The OS RNG through `ring`, so no second RNG crate is needed.
struct OsRandom;

impl RngCore for OsRandom {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // The OS RNG failing is not recoverable; key generation cannot go on without it.
        if ring::rand::SystemRandom::new().fill(dest).is_err() {
            panic!("the operating system's random number generator failed");
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        ring::rand::SystemRandom::new()
            .fill(dest)
            .map_err(|_| Error::new("the operating system's random number generator failed"))
    }
}

impl CryptoRng for OsRandom {}
