//! CANopen CiA 301 network services.
