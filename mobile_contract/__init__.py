"""The mobile contract: every wire shape the phones rely on, as msgspec Structs.

Depends on msgspec only. `openapi.json` beside this file is exported from the running app
(`groundwork openapi export`) and a test fails when it drifts from the code.
"""
