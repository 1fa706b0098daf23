//! candump -L log files.
