//! Cluster mode (issue 19, docs/cluster.md): control nodes route, workers store.
//!
//! * [`placement`]: which workers hold each partition (rendezvous hashing).
//! * [`wire`]: the bytes of the control ↔ worker calls (`/internal/v1/*`).
//! * [`client`]: one worker's internal API, as a control node calls it.
//! * [`router`]: [`ClusterStorage`], the whole cluster behind the `Storage` seam.
//! * [`hints`]: hinted hand-off, what a replica missed on its way to it.
//! * [`moves`]: copying partitions to the workers they move onto.
//! * [`raft`]: the cluster's state by Raft (openraft): members, layout, metadata.
//! * [`analytics`]: the analytics plan's metrics, parameters and mergeable partial
//!   aggregates (pure; the HTTP side is the server's `plan` module).
//!
//! The worker's side of the calls is the server's `cluster` module: the internal routes
//! over the worker's own engine.
pub mod analytics;
pub mod client;
pub mod hints;
pub mod moves;
pub mod placement;
pub mod raft;
pub mod router;
pub mod wire;

pub use analytics::ComputeRequest;
pub use moves::MoveProgress;
pub use placement::{Placement, WorkerId};
pub use router::{ClusterHealth, ClusterOptions, ClusterStorage, Layout, WorkerState};
