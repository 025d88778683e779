"""Case files (JSON and Python modules) and the ``run`` campaign over them."""

from conformance.cases.casefile import (
    Case,
    CaseError,
    dump_case,
    dump_description,
    load_case_file,
    load_python_cases,
    parse_case,
    parse_description,
    run_case,
)

__all__ = ["Case", "CaseError", "dump_case", "dump_description", "load_case_file",
           "load_python_cases", "parse_case", "parse_description", "run_case"]
