"""The selective-scan op of MSVMamba: one entry point per operation, dispatching to compiled or PyTorch code."""
from .backend import ScanCall, observe_scans, use_backend
from .block_scan import ms2d_block_scan
from .ms2d_routes import half_res_routes, merge_half_res_routes, ms2d_half_res_scan
from .selective_scan import selective_scan_fn, selective_scan_ref

__all__ = ['selective_scan_fn', 'selective_scan_ref', 'ms2d_half_res_scan', 'half_res_routes',
           'merge_half_res_routes', 'ms2d_block_scan', 'use_backend', 'observe_scans', 'ScanCall']
