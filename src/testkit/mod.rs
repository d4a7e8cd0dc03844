//! Test harness placeholder
