// The Container Apps environment: workload-profiles (Consumption profile), injected into the
// delegated Container Apps subnet, internal only (no public IP), logs to the environment's
// Log Analytics workspace through a diagnostic setting (no shared key handled anywhere), and a
// private DNS zone for its default domain so the VNet resolves the apps' names.
targetScope = 'resourceGroup'

param environment string
param regionShort string
param location string
param tags object

@description('Delegated subnet (Microsoft.App/environments) from the network module.')
param infrastructureSubnetId string
param vnetId string
param logAnalyticsWorkspaceId string

@description('Spread replicas over availability zones (needs a region with zones); on for prod.')
param zoneRedundant bool = false

resource managedEnvironment 'Microsoft.App/managedEnvironments@2024-03-01' = {
  name: 'cae-council-${environment}-${regionShort}'
  location: location
  tags: tags
  properties: {
    vnetConfiguration: {
      internal: true
      infrastructureSubnetId: infrastructureSubnetId
    }
    workloadProfiles: [
      {
        name: 'Consumption'
        workloadProfileType: 'Consumption'
      }
    ]
    appLogsConfiguration: {
      destination: 'azure-monitor'
    }
    zoneRedundant: zoneRedundant
  }
}

resource environmentDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  scope: managedEnvironment
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

// An internal environment answers on its static IP under its default domain: a private zone
// for that domain with a wildcard record makes <app>.<defaultDomain> resolve inside the VNet.
resource environmentDnsZone 'Microsoft.Network/privateDnsZones@2020-06-01' = {
  name: managedEnvironment.properties.defaultDomain
  location: 'global'
  tags: tags
}

resource environmentDnsWildcard 'Microsoft.Network/privateDnsZones/A@2020-06-01' = {
  parent: environmentDnsZone
  name: '*'
  properties: {
    ttl: 300
    aRecords: [
      {
        ipv4Address: managedEnvironment.properties.staticIp
      }
    ]
  }
}

resource environmentDnsLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = {
  parent: environmentDnsZone
  name: 'link-vnet'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnetId
    }
  }
}

output environmentId string = managedEnvironment.id
output defaultDomain string = managedEnvironment.properties.defaultDomain
output staticIp string = managedEnvironment.properties.staticIp
