// Secrets the LiteLLM proxy reads through Key Vault references: each persona endpoint's scoring
// key (read from the endpoint with listKeys at deployment time, never written in a file) and the
// proxy's master key (a @secure() deployment parameter, never in a parameter file).
targetScope = 'resourceGroup'

param keyVaultName string
param tags object

@description('When the secrets expire (rotate by redeploying before then).')
param secretExpiry string = dateTimeAdd(utcNow(), 'P90D')

@description('Resource group of the AI Foundry project.')
param aiResourceGroupName string
param projectName string

@description('Persona names, in the same order as endpointNames.')
param personaNames array
param endpointNames array

@secure()
@description('LiteLLM master key (starts with sk-); supplied at deployment time.')
param litellmMasterKey string

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource endpointKeys 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [for (persona, i) in personaNames: {
  parent: keyVault
  name: '${persona}-api-key'
  tags: tags
  properties: {
    contentType: 'text/plain'
    value: listKeys(resourceId(aiResourceGroupName, 'Microsoft.MachineLearningServices/workspaces/onlineEndpoints', projectName, endpointNames[i]), '2024-10-01').primaryKey
    attributes: {
      enabled: true
      exp: dateTimeToEpoch(secretExpiry)
    }
  }
}]

resource masterKey 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: keyVault
  name: 'litellm-master-key'
  tags: tags
  properties: {
    contentType: 'text/plain'
    value: litellmMasterKey
    attributes: {
      enabled: true
      exp: dateTimeToEpoch(secretExpiry)
    }
  }
}

output secretNames array = [for (persona, i) in personaNames: endpointKeys[i].name]
