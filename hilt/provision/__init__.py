"""Provisioning: booting an image on nodes through their BMCs, and proving which node and image came up."""
