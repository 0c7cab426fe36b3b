"""Moved to swapbench.methods.nets.iresnet (shared with DiffSwap); kept so existing imports work."""

from swapbench.methods.nets.iresnet import IBasicBlock, IResNet, iresnet100

__all__ = ["IBasicBlock", "IResNet", "iresnet100"]
