"""Measuring MSVMamba models against what was published about them."""
from .published import Figure, Published, imagenet_top1, published, published_figures, published_gflops

__all__ = ['Figure', 'Published', 'imagenet_top1', 'published', 'published_figures', 'published_gflops']
