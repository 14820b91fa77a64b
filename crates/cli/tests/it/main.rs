//! Integration tests of `wclab`: real redis-server processes, real worker
//! processes, real `kill -9`. Each module is one lesson of the labs.

mod bad_input;
mod batch;
mod chaos;
mod checkpoint;
mod common;
mod labs;
mod python;
mod raft;
mod raft_anomalies;
mod raft_auth;
mod raft_group;
mod raft_tls;
mod security;
mod stream;
