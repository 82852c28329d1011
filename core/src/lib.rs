//! Pincer's core: the containers agents run in and the mounts they see.
//!
//! This crate is the security boundary an owner reviews first. It holds no
//! HTTP, no SQL, no CLI, no key: only [`sandbox`] (the one code that talks to
//! the container engine, and the hardened spec it is allowed to ask for),
//! [`mounts`] (the only constructor of a mount: the allowlist, the per-group
//! layout, secret shadowing), [`group`] names and the [`paths`] they derive,
//! and [`beneath`], the host's file operations under folders an agent can
//! write. See ARCHITECTURE.md for the invariants.

pub mod beneath;
pub mod group;
pub mod mounts;
pub mod paths;
pub mod sandbox;
pub mod staging;
