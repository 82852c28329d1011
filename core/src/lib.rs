//! Pincer's host: the process that decides what every agent may see, reach
//! and do, and runs each invocation in a fresh, hardened container.
//!
//! See ARCHITECTURE.md for the code map and the invariants; the short form:
//! only [`sandbox`] talks to the container engine, only [`mounts`] builds a
//! mount, only [`gateway`] holds the model key, host file operations under
//! folders an agent can write go through [`beneath`], and [`invoke`] puts them
//! together for one message.

pub mod beneath;
pub mod budget;
pub mod channel;
pub mod config;
pub mod daemon;
pub mod egress;
pub mod escape;
pub mod folders;
pub mod gateway;
pub mod gateway_check;
mod gateway_model;
pub mod group;
pub mod hostapi;
pub mod invoke;
pub mod mounts;
pub mod sandbox;
pub mod scheduler;
pub mod store;
pub mod time;
