//! Full-screen view.

use crate::session::Session;
use crate::view::ViewOptions;

/// Runs the full-screen view until the user quits.
pub fn run(_session: Session, _view: ViewOptions) -> anyhow::Result<()> {
    anyhow::bail!("the full-screen view is not built yet: use -b")
}
