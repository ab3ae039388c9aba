"""The hand-off to Kubernetes (docs/kubernetes.md): publish only facts a run verified (NFD feature files), and
check what the kubelet will believe (device plugin, pod-resources, GPU Feature Discovery). Beside the session
layer: it uses record, rig, node, profiles and fabric, never the pytest plugin or the simulated rack."""
