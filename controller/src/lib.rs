//! takt-controller.
