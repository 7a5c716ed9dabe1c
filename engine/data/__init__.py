"""Datasets (embedded and torchvision), task splits and scenarios."""

from engine.data.benchmark import Benchmark, build_benchmark, class_order, data_dir
from engine.data.raw import RawData

__all__ = ["Benchmark", "RawData", "build_benchmark", "class_order", "data_dir"]
