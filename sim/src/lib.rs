//! `tfpilot-sim`: a stateful GitHub simulator speaking real HTTP, for TfPilot's tests and demo.
