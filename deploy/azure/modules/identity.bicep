// The LiteLLM proxy's user-assigned identity. Created before the Key Vault and the registry so
// their role assignments exist before the Container App's first revision starts (a system
// identity would only exist with the app, and its first Key Vault reference would fail).
targetScope = 'resourceGroup'

param environment string
param regionShort string
param location string
param tags object

resource litellmIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-litellm-${environment}-${regionShort}'
  location: location
  tags: tags
}

output id string = litellmIdentity.id
output principalId string = litellmIdentity.properties.principalId
output clientId string = litellmIdentity.properties.clientId
