//! The skills linked into this build: one line each, in the block below,
//! which `cargo xtask apply-skill` writes and `remove-skill` takes out. Each
//! names a crate under `skills/`; read it before you link it.

use pincer_assistant::Registry;

#[allow(unused_variables)] // while no skill is linked
pub(crate) fn register(registry: &mut Registry) {
    // apply-skill: begin
    // apply-skill: end
}
