//! SocketCAN backend.
