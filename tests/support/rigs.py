"""A good rigs.yaml (one real-shaped rig: Redfish BMC with credential references, SSH with a pinned host key), the
starting point that tests of bad input edit one field of."""

from __future__ import annotations

import textwrap

GOOD = textwrap.dedent("""\
    default_rig: staging-a
    lease_store: etcd://127.0.0.1:2379
    images:
      img-1.4.2:
        url: https://artifacts.example/img-1.4.2.iso
        sha256: 0123abcd
        identity: {image_id: img-1.4.2, kernel: 6.8.0-45-generic, driver: 550.54.15}
        boot_timeout_s: 1200
    rigs:
      staging-a:
        default_image: img-1.4.2
        nodes:
          gpu-01:
            bmc:
              url: https://10.0.0.11
              system_id: System.Embedded.1
              username: ${IDRAC_USER}
              password: ${IDRAC_PASSWORD}
              verify: /etc/hilt/bmc-ca.pem
            ssh:
              host: 10.0.1.11
              user: hilt
              key: ~/.ssh/hilt_ed25519
              host_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFXf92quncSueRSAKIeX0svlF2Ub7Hg9npxpKkcZhcnr
            profile: hgx-h100-8gpu
    """)
