//! `tapwire simulate` (being built).

/// Arguments of `tapwire simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the simulation.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("tapwire simulate is not built yet")
}
