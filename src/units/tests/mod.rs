//! Unit file tests: what is accepted, and what users are told about each
//! mistake (position and wording).

mod jobs;
mod mistakes;
