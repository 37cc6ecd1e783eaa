// Sends all of an online endpoint's traffic to one deployment (after that deployment exists).
targetScope = 'resourceGroup'

param projectName string
param endpointName string
param deploymentName string
param location string
param tags object

resource project 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: projectName
}

resource endpoint 'Microsoft.MachineLearningServices/workspaces/onlineEndpoints@2024-10-01' = {
  parent: project
  name: endpointName
  location: location
  tags: tags
  kind: 'Managed'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    authMode: 'Key'
    publicNetworkAccess: 'Disabled'
    traffic: {
      '${deploymentName}': 100
    }
  }
}
