// Azure AI Foundry for one environment: a hub (an Azure Machine Learning workspace of kind Hub)
// with its storage account and container registry, and the project the persona endpoints live
// in. Storage, registry and hub deny public network access and are reached through private
// endpoints in the private-endpoint subnet; the hub's managed network allows only approved
// outbound traffic, which also covers the managed online deployments' egress.
targetScope = 'resourceGroup'

param environment string
param regionShort string
param location string
param tags object

param privateEndpointSubnetId string
param keyVaultId string
param appInsightsId string
param logAnalyticsWorkspaceId string

@description('Zone ids for blob, file, queue and table (network module output).')
param storageDnsZoneIds object
param amlApiDnsZoneId string
param amlNotebooksDnsZoneId string
param acrDnsZoneId string

@description('Principal ids granted AcrPull on the registry (the LiteLLM identity).')
param acrPullPrincipalIds array

var suffix = '${environment}-${regionShort}'
// Storage and registry names are global, alphanumeric only: <type><name><env><region><unique>.
var unique = take(uniqueString(subscription().id, resourceGroup().id), 4)
var storageName = take('stcouncil${environment}${regionShort}${unique}', 24)
var acrName = 'crcouncil${environment}${regionShort}${unique}'
var hubName = 'hub-council-${suffix}'
var projectName = 'proj-council-${suffix}'
var storageGroups = [
  'blob'
  'file'
  'queue'
  'table'
]
// Built-in role: AcrPull.
var acrPullRoleId = '7f951dfd-2e14-4567-8d7a-4f6a4b7e8e05'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_43: the name is computed (take(..., 24) of lowercase letters and digits), which checkov cannot evaluate; Azure validates it at deployment
  // checkov:skip=CKV_AZURE_206: zone-redundant (ZRS) on purpose; the account holds workspace artefacts that can be rebuilt, geo-replication would double its cost
  name: storageName
  location: location
  tags: tags
  sku: {
    name: 'Standard_ZRS'
  }
  kind: 'StorageV2'
  properties: {
    publicNetworkAccess: 'Disabled'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Deny'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
        }
        file: {
          enabled: true
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource storageBlobServices 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource storagePrivateEndpoints 'Microsoft.Network/privateEndpoints@2023-11-01' = [for group in storageGroups: {
  name: 'pe-${storageName}-${group}'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: privateEndpointSubnetId
    }
    privateLinkServiceConnections: [
      {
        name: 'plsc-${storageName}-${group}'
        properties: {
          privateLinkServiceId: storage.id
          groupIds: [
            group
          ]
        }
      }
    ]
  }
}]

resource storageDnsGroups 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2023-11-01' = [for (group, i) in storageGroups: {
  parent: storagePrivateEndpoints[i]
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: group
        properties: {
          privateDnsZoneId: storageDnsZoneIds[group]
        }
      }
    ]
  }
}]

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  // checkov:skip=CKV_AZURE_166: quarantine needs a scanner that releases each pushed image; with none configured every push would stay unusable. Images are built from the pinned Dockerfile in CI
  name: acrName
  location: location
  tags: tags
  // Premium: the only tier with private endpoints and public network access switched off.
  sku: {
    name: 'Premium'
  }
  properties: {
    adminUserEnabled: false
    anonymousPullEnabled: false
    publicNetworkAccess: 'Disabled'
    networkRuleBypassOptions: 'AzureServices'
    dataEndpointEnabled: true
    zoneRedundancy: 'Enabled'
    policies: {
      retentionPolicy: {
        status: 'enabled'
        days: 30
      }
      quarantinePolicy: {
        status: 'disabled'
      }
      trustPolicy: {
        status: 'disabled'
        type: 'Notary'
      }
      exportPolicy: {
        status: 'disabled'
      }
    }
  }
}

resource registryPrivateEndpoint 'Microsoft.Network/privateEndpoints@2023-11-01' = {
  name: 'pe-${acrName}'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: privateEndpointSubnetId
    }
    privateLinkServiceConnections: [
      {
        name: 'plsc-${acrName}'
        properties: {
          privateLinkServiceId: registry.id
          groupIds: [
            'registry'
          ]
        }
      }
    ]
  }
}

resource registryDnsGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2023-11-01' = {
  parent: registryPrivateEndpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: 'registry'
        properties: {
          privateDnsZoneId: acrDnsZoneId
        }
      }
    ]
  }
}

resource acrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principalId in acrPullPrincipalIds: {
  scope: registry
  name: guid(registry.id, principalId, acrPullRoleId)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPullRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

resource hub 'Microsoft.MachineLearningServices/workspaces@2024-10-01' = {
  // checkov:skip=CKV_AZURE_243: the check looks for user-defined PrivateEndpoint outbound rules; the managed network (AllowOnlyApprovedOutbound) creates the private-endpoint rules to the hub's storage, Key Vault and registry itself. Inbound, the hub has pe-{hub} below, and the project shares it
  name: hubName
  location: location
  tags: tags
  kind: 'Hub'
  sku: {
    name: 'Basic'
    tier: 'Basic'
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    friendlyName: 'AI Council ${environment}'
    storageAccount: storage.id
    keyVault: keyVaultId
    applicationInsights: appInsightsId
    containerRegistry: registry.id
    publicNetworkAccess: 'Disabled'
    systemDatastoresAuthMode: 'identity'
    managedNetwork: {
      isolationMode: 'AllowOnlyApprovedOutbound'
    }
  }
}

resource project 'Microsoft.MachineLearningServices/workspaces@2024-10-01' = {
  // checkov:skip=CKV_AZURE_243: the check looks for user-defined PrivateEndpoint outbound rules; the managed network (AllowOnlyApprovedOutbound) creates the private-endpoint rules to the hub's storage, Key Vault and registry itself. Inbound, the hub has pe-{hub} below, and the project shares it
  name: projectName
  location: location
  tags: tags
  kind: 'Project'
  sku: {
    name: 'Basic'
    tier: 'Basic'
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    friendlyName: 'AI Council personas ${environment}'
    hubResourceId: hub.id
    publicNetworkAccess: 'Disabled'
  }
}

resource hubPrivateEndpoint 'Microsoft.Network/privateEndpoints@2023-11-01' = {
  name: 'pe-${hubName}'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: privateEndpointSubnetId
    }
    privateLinkServiceConnections: [
      {
        name: 'plsc-${hubName}'
        properties: {
          privateLinkServiceId: hub.id
          groupIds: [
            'amlworkspace'
          ]
        }
      }
    ]
  }
}

resource hubDnsGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2023-11-01' = {
  parent: hubPrivateEndpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: 'api'
        properties: {
          privateDnsZoneId: amlApiDnsZoneId
        }
      }
      {
        name: 'notebooks'
        properties: {
          privateDnsZoneId: amlNotebooksDnsZoneId
        }
      }
    ]
  }
}

resource hubDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  scope: hub
  name: 'to-log-analytics'
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

output hubId string = hub.id
output projectName string = project.name
output projectId string = project.id
output registryLoginServer string = registry.properties.loginServer
output storageId string = storage.id
