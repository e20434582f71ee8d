//! weft-executor: the execution model (Kestra's JSON shape) and the pure `advance` state machine
//! that holds every flowable task's semantics. It never does I/O.
