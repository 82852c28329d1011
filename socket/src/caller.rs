//! Who is on the other end of a socket: decided by the host when it made
//! the socket, never by what a request says.

use pincer_core::group::GroupName;

/// Who is on the other end of a socket: decided by the host when it made the socket.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The group the container runs for.
    pub group: GroupName,
    /// The invocation.
    pub invocation_id: String,
}
