"""Moved to swapbench.faces.iresnet (shared with the blendface_r100 identity backend); kept so existing imports work."""

from swapbench.faces.iresnet import IBasicBlock, IResNet, iresnet18, iresnet100  # noqa: F401
