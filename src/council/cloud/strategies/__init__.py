"""Ways to carry out an intent, behind one interface (`base.Strategy`): the Azure CLI, the
Python SDK, an MCP server's tools and Terraform. `select.rank` orders them for an intent."""
