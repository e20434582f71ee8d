//! weft-store: the object-store trait (local directory, S3, memory) with conditional writes, and the
//! repositories of flows, executions, results, logs and files built on top of it.
