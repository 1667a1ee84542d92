"""Built-in tools: pure, exact calculations any agent can list by name."""

from domain.tools.base import BuiltinTool, ToolInputError
from domain.tools.mortgage import MORTGAGE_CALCULATOR
from domain.tools.roi import ROI_CALCULATOR
from domain.tools.statistical import STATISTICAL_ANALYZER

BUILTIN_TOOLS: dict[str, BuiltinTool] = {
    tool.name: tool for tool in (MORTGAGE_CALCULATOR, ROI_CALCULATOR, STATISTICAL_ANALYZER)
}

__all__ = ["BUILTIN_TOOLS", "BuiltinTool", "ToolInputError"]
