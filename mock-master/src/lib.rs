//! mock-master: a scriptable fake Dragonfly master (see docs/mock-master.md).
