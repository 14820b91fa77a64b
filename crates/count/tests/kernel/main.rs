//! Black-box tests of the counting kernel against a deliberately simple
//! oracle. One binary, topical modules.

mod csv;
mod files;
mod oracle;
mod random;
mod ranges;
mod read;
mod text;
