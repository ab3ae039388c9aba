"""The simulated rack: sushy-emulator BMCs, OpenSSH nodes in network namespaces, images, faults."""
