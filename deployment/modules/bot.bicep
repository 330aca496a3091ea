// The Azure Bot resource: it registers the bot's messaging endpoint with the Bot Framework,
// authenticates the bot as the user-assigned managed identity, and turns on the Teams channel.

@description('Name of the Azure Bot resource (globally unique).')
param name string

@description('Name people see for the bot in the Azure portal.')
param displayName string

@description('Tags for the bot.')
param tags object

@description('Pricing tier: F0 (free; Teams is a standard channel, so F0 has no message limit there) or S1.')
@allowed([
  'F0'
  'S1'
])
param sku string

@description('Host name of the web app, such as app-name.azurewebsites.net.')
param webAppHostName string

@description('Resource id of the user-assigned identity the bot authenticates as.')
param identityId string

@description('Client id of that identity: the bot\'s Microsoft App ID.')
param identityClientId string

resource bot 'Microsoft.BotService/botServices@2022-09-15' = {
  name: name
  location: 'global'
  tags: tags
  kind: 'azurebot'
  sku: {
    name: sku
  }
  properties: {
    displayName: displayName
    endpoint: 'https://${webAppHostName}/api/messages'
    msaAppType: 'UserAssignedMSI'
    msaAppId: identityClientId
    msaAppTenantId: tenant().tenantId
    msaAppMSIResourceId: identityId
  }
}

resource teams 'Microsoft.BotService/botServices/channels@2022-09-15' = {
  parent: bot
  name: 'MsTeamsChannel'
  location: 'global'
  properties: {
    channelName: 'MsTeamsChannel'
    properties: {
      isEnabled: true
      enableCalling: false
    }
  }
}

output name string = bot.name
output messagingEndpoint string = bot.properties.endpoint
