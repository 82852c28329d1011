//! The assistant: configuration, one message end to end ([`invoke`]), the
//! daemon that moves messages between channels, the store and invocations,
//! and the [`Registry`] where skills plug in (channels, model providers,
//! doctor checks).
//!
//! The assistant puts the core's containers and mounts and the socket
//! together; it decides nothing about what an agent may see or reach.

pub mod changes;
pub mod channel;
pub mod config;
pub mod daemon;
pub mod escape;
pub mod folders;
pub mod image;
pub mod invoke;
pub mod registry;

pub use registry::Registry;
