//! Which API a request came through.

/// Which API a request came through; a few rules differ by dialect (Alibaba's lifecycle,
/// tag rules, session priorities unique per region).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// EC2 Query.
    Ec2,
    /// Alibaba RPC.
    Alibaba,
    /// tapwire's own JSON endpoints.
    Tapwire,
}
