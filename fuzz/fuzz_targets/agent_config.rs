//! Any bytes as an agent's config document: refused cleanly or accepted; an accepted and
//! valid document compiles (or is refused as too large) and survives a JSON round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapwire_mirror::Classifier;
use tapwire_model::config::InterfaceConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(cfg) = serde_json::from_slice::<InterfaceConfig>(data) else { return };
    let back: InterfaceConfig = serde_json::from_str(&serde_json::to_string(&cfg).expect("serialises"))
        .expect("what was written reads back");
    assert_eq!(back, cfg);
    if cfg.validate().is_ok()
        && let Ok(classifier) = Classifier::compile(&cfg)
    {
        let _ = classifier.prefilter(Some(1));
    }
});
