// Monitoring for one environment: the Log Analytics workspace every service logs to (created
// here and passed on by id: the seed passed null), workspace-based Application Insights, and the
// action group the alert rules notify.
targetScope = 'resourceGroup'

param environment string
param regionShort string
param location string
param tags object

@description('Days Log Analytics keeps data (cost driver: ingestion and retention).')
@minValue(30)
@maxValue(730)
param retentionInDays int

@description('Addresses the alert rules and budgets notify.')
param alertEmails array

var suffix = '${environment}-${regionShort}'

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-council-${suffix}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      disableLocalAuth: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-council-${suffix}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: true
    RetentionInDays: retentionInDays
  }
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-council-${suffix}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: take('council${environment}', 12)
    enabled: true
    emailReceivers: [for (email, i) in alertEmails: {
      name: 'email-${i}'
      emailAddress: email
      useCommonAlertSchema: true
    }]
  }
}

output logAnalyticsWorkspaceId string = logAnalytics.id
output appInsightsId string = appInsights.id
output actionGroupId string = actionGroup.id
