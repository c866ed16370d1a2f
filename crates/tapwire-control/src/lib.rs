//! tapwire's control logic.
//!
//! [`Control`] executes dialect-neutral [`Operation`]s: the [`plan`] step checks an
//! operation against the in-memory [`State`] (every check, quota and ID choice happens
//! there) and records the [`Change`]s it makes; [`Control`] commits them to the [`Store`]
//! in one transaction, and only then applies them to memory and answers. Reads take a
//! consistent snapshot of the state.
//!
//! Rooms: [`control`] (group commit), [`plan`] (one file per resource, like the dialect
//! codecs), [`ops`] (what callers ask and get), [`state`] (the resources at one
//! revision), [`render`] (agent config documents), [`error`]; the injected [`clock`] and
//! [`entropy`], the [`config`], the [`dialect`], and [`testing`] support.
//!
//! [`Store`]: tapwire_store::Store

pub mod audit;
pub mod catch_up;
pub mod clock;
pub mod config;
pub mod control;
pub mod dialect;
pub mod entropy;
pub mod error;
pub mod index;
pub mod ops;
pub mod plan;
pub mod render;
pub mod state;
pub mod testing;

pub use clock::{Clock, SystemClock};
pub use config::ControlConfig;
pub use control::Control;
pub use dialect::Dialect;
pub use entropy::Entropy;
pub use error::{ApiError, ErrorKind, Quota, ResourceKind};
pub use ops::{Operation, Output, RequestContext, Task};
pub use state::{Change, IdempotencyRecord, ServiceRecord, State, idempotency_key};
