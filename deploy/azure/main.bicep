// AI Council on Azure: one environment (dev, staging or prod) in one region.
//
//   az deployment sub create --location eastus2 --template-file deploy/azure/main.bicep \
//     --parameters deploy/azure/parameters/dev.parameters.json \
//     --parameters litellmMasterKey="$LITELLM_MASTER_KEY"
//
// Resource groups (<type>-<name>-<env>-<region>):
//   rg-core-infra   VNet, subnets, NSGs, private DNS zones, Key Vault
//   rg-ai-services  AI Foundry hub + project, storage, registry, persona endpoints
//   rg-app-hosting  Log Analytics, Application Insights, alerts, Container Apps, LiteLLM
//   rg-gpu-compute  created and budgeted, empty by design (see README: GPU VMs decision)
targetScope = 'subscription'

@allowed([
  'dev'
  'staging'
  'prod'
])
param environment string

@description('Primary region (seed 000: East US 2).')
param location string = 'eastus2'

@description('Owner tag: the team answerable for this environment.')
param owner string

@description('VNet 10.X.0.0/16: X = 1 dev, 2 staging, 3 prod (seed 000).')
@minValue(0)
@maxValue(255)
param networkOctet int

@minValue(30)
param logRetentionDays int = 30

@description('Who gets alert and budget notifications.')
param alertEmails array

@description('Personas: [{ name, model, instanceType, minInstances (>= 1), maxInstances }].')
param personas array

@description('false: no persona endpoint is deployed (no GPU cost); LiteLLM then has no backends.')
param deployPersonaEndpoints bool = true

@description('LiteLLM image in the environment registry, e.g. litellm-council:1.106.2-1.')
param litellmImage string

@minValue(0)
param litellmMinReplicas int = 0

@minValue(1)
param litellmMaxReplicas int = 2

@secure()
@description('LiteLLM master key (sk-...). Pass on the command line or from a pipeline secret.')
param litellmMasterKey string

@minValue(1)
param budgetAmount int

@description('First day of the first budget month, YYYY-MM-01.')
param budgetStartDate string

param containerAppsZoneRedundant bool = false

// Region short codes for names. The seed's substring(location, 0, 4) turned both eastus and
// eastus2 into 'east'.
var regionShortCodes = {
  eastus: 'eus'
  eastus2: 'eus2'
  centralus: 'cus'
  westus3: 'wus3'
  westeurope: 'weu'
  northeurope: 'neu'
  swedencentral: 'sdc'
}
var regionShort = regionShortCodes[location]
var suffix = '${environment}-${regionShort}'
var baseTags = {
  Project: 'AICouncil'
  Environment: environment
  Owner: owner
}
var activePersonas = deployPersonaEndpoints ? personas : []
var personaNames = [for p in activePersonas: p.name]
var personaMinInstances = [for p in activePersonas: p.minInstances]

resource rgCore 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-core-infra-${suffix}'
  location: location
  tags: union(baseTags, {
    ServiceName: 'CoreInfra'
  })
}

resource rgAi 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-ai-services-${suffix}'
  location: location
  tags: union(baseTags, {
    ServiceName: 'AIServices'
  })
}

resource rgApps 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-app-hosting-${suffix}'
  location: location
  tags: union(baseTags, {
    ServiceName: 'AppHosting'
  })
}

resource rgGpu 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-gpu-compute-${suffix}'
  location: location
  tags: union(baseTags, {
    ServiceName: 'GpuCompute'
  })
}

module network 'modules/network.bicep' = {
  scope: rgCore
  name: 'network-${suffix}'
  params: {
    environment: environment
    regionShort: regionShort
    location: location
    networkOctet: networkOctet
    tags: union(baseTags, {
      ServiceName: 'CoreInfra'
    })
  }
}

module monitoring 'modules/monitoring.bicep' = {
  scope: rgApps
  name: 'monitoring-${suffix}'
  params: {
    environment: environment
    regionShort: regionShort
    location: location
    retentionInDays: logRetentionDays
    alertEmails: alertEmails
    tags: union(baseTags, {
      ServiceName: 'Monitoring'
    })
  }
}

module identity 'modules/identity.bicep' = {
  scope: rgApps
  name: 'identity-${suffix}'
  params: {
    environment: environment
    regionShort: regionShort
    location: location
    tags: union(baseTags, {
      ServiceName: 'LiteLLM'
    })
  }
}

module keyvault 'modules/keyvault.bicep' = {
  scope: rgCore
  name: 'keyvault-${suffix}'
  params: {
    environment: environment
    regionShort: regionShort
    location: location
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    keyVaultDnsZoneId: network.outputs.keyVaultDnsZoneId
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    secretReaderPrincipalIds: [
      identity.outputs.principalId
    ]
    tags: union(baseTags, {
      ServiceName: 'CoreInfra'
    })
  }
}

module aiStudio 'modules/aistudio.bicep' = {
  scope: rgAi
  name: 'aistudio-${suffix}'
  params: {
    environment: environment
    regionShort: regionShort
    location: location
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    keyVaultId: keyvault.outputs.keyVaultId
    appInsightsId: monitoring.outputs.appInsightsId
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    storageDnsZoneIds: network.outputs.storageDnsZoneIds
    amlApiDnsZoneId: network.outputs.amlApiDnsZoneId
    amlNotebooksDnsZoneId: network.outputs.amlNotebooksDnsZoneId
    acrDnsZoneId: network.outputs.acrDnsZoneId
    acrPullPrincipalIds: [
      identity.outputs.principalId
    ]
    tags: union(baseTags, {
      ServiceName: 'AIServices'
    })
  }
}

module endpoints 'modules/endpoints.bicep' = {
  scope: rgAi
  name: 'endpoints-${suffix}'
  params: {
    environment: environment
    regionShort: regionShort
    location: location
    projectName: aiStudio.outputs.projectName
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    personas: activePersonas
    tags: union(baseTags, {
      ServiceName: 'Personas'
    })
  }
}

module secrets 'modules/keyvault_secrets.bicep' = {
  scope: rgCore
  name: 'secrets-${suffix}'
  params: {
    keyVaultName: keyvault.outputs.keyVaultName
    aiResourceGroupName: rgAi.name
    projectName: aiStudio.outputs.projectName
    personaNames: personaNames
    endpointNames: endpoints.outputs.endpointNames
    litellmMasterKey: litellmMasterKey
    tags: union(baseTags, {
      ServiceName: 'LiteLLM'
    })
  }
}

module containerAppsEnv 'modules/containerapps_env.bicep' = {
  scope: rgApps
  name: 'containerapps-env-${suffix}'
  params: {
    environment: environment
    regionShort: regionShort
    location: location
    infrastructureSubnetId: network.outputs.containerAppsSubnetId
    vnetId: network.outputs.vnetId
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    zoneRedundant: containerAppsZoneRedundant
    tags: union(baseTags, {
      ServiceName: 'AppHosting'
    })
  }
}

module litellm 'modules/litellm.bicep' = {
  scope: rgApps
  name: 'litellm-${suffix}'
  params: {
    environment: environment
    regionShort: regionShort
    location: location
    managedEnvironmentId: containerAppsEnv.outputs.environmentId
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    registryLoginServer: aiStudio.outputs.registryLoginServer
    image: litellmImage
    keyVaultUri: keyvault.outputs.keyVaultUri
    personaNames: personaNames
    scoringUris: endpoints.outputs.scoringUris
    minReplicas: litellmMinReplicas
    maxReplicas: litellmMaxReplicas
    tags: union(baseTags, {
      ServiceName: 'LiteLLM'
    })
  }
  dependsOn: [
    secrets
  ]
}

module alerts 'modules/alerts.bicep' = {
  scope: rgApps
  name: 'alerts-${suffix}'
  params: {
    environment: environment
    regionShort: regionShort
    location: location
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    actionGroupId: monitoring.outputs.actionGroupId
    personaNames: personaNames
    endpointIds: endpoints.outputs.endpointIds
    deploymentIds: endpoints.outputs.deploymentIds
    personaMinInstances: personaMinInstances
    litellmAppId: litellm.outputs.containerAppId
    litellmMinReplicas: litellmMinReplicas
    tags: union(baseTags, {
      ServiceName: 'Monitoring'
    })
  }
}

module budget 'modules/budget.bicep' = {
  name: 'budget-${suffix}'
  params: {
    environment: environment
    amount: budgetAmount
    startDate: budgetStartDate
    resourceGroupNames: [
      rgCore.name
      rgAi.name
      rgApps.name
      rgGpu.name
    ]
    contactEmails: alertEmails
    actionGroupId: monitoring.outputs.actionGroupId
  }
}

output coreResourceGroup string = rgCore.name
output aiResourceGroup string = rgAi.name
output appsResourceGroup string = rgApps.name
output gpuResourceGroup string = rgGpu.name
output vnetId string = network.outputs.vnetId
output litellmFqdn string = litellm.outputs.fqdn
output registryLoginServer string = aiStudio.outputs.registryLoginServer
